"""The reports of `sentinel run`: each JUnit file is read back with junitparser and checked against
the Jenkins xUnit plugin's junit-10.xsd (put in the venv by `make install`), and each JSON file is
read back with json.loads."""

from __future__ import annotations

import json
import os
import stat
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from sentinel_cli.reports import (
    SCHEMA_VERSION,
    Outcome,
    RunReport,
    StepRow,
    TestReport,
    classnames,
    outcome,
    write_json,
    write_junit,
)
from shared.model import ErrorCategory

#: Put in the venv by `make install` (see the Makefile: no package installs it).
SCHEMA_PATH = Path(sys.prefix) / "share" / "sentinel" / "junit-10.xsd"
if not SCHEMA_PATH.is_file():
    pytest.fail(f"{SCHEMA_PATH} is missing: run `make install`", pytrace=False)
SCHEMA = xmlschema.XMLSchema(SCHEMA_PATH)
STARTED = datetime(2025, 3, 1, 12, 30, 5, 250000, tzinfo=UTC)
PASSING_STEPS = (StepRow(0, "Open the shop", "passed", 812), StepRow(1, "See the cart", "passed", 95))


def a_test(name: str = "Log in", **fields: Any) -> TestReport:
    values: dict[str, Any] = {
        "job_id": f"job-{name.lower().replace(' ', '-')}",
        "state": "completed",
        "duration_ms": 1234,
        "attempts": 1,
        "source": "tests/login.json",
        "steps": PASSING_STEPS,
    }
    return TestReport(name=name, **(values | fields))


def a_run(*tests: TestReport, **fields: Any) -> RunReport:
    values: dict[str, Any] = {"name": "nightly smoke", "started_at": STARTED, "duration_ms": 4567, "hostname": "ci-7"}
    return RunReport(run_id="run-42", tests=tests, **(values | fields))


def schema_view(path: Path) -> ET.Element:
    """The report less the two documented extensions (testcase `file`, testcase <properties>)."""
    root = ET.parse(path).getroot()  # expat refuses a file that is not well-formed XML 1.0
    for case in root.iter("testcase"):
        case.attrib.pop("file", None)
        for properties in case.findall("properties"):
            case.remove(properties)
    return root


def read_junit(report: RunReport, tmp_path: Path) -> tuple[TestSuite, list[TestCase]]:
    """Write `report`, check it against junit-10.xsd, and read it back with junitparser."""
    path = tmp_path / "junit.xml"
    write_junit(report, path)
    SCHEMA.validate(schema_view(path))
    suites = list(JUnitXml.fromfile(str(path)))
    assert len(suites) == 1
    return suites[0], list(suites[0])


def read_json(report: RunReport, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "report.json"
    write_json(report, path)
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def case_elements(tmp_path: Path) -> list[ET.Element]:
    """The <testcase> elements of the last junit.xml written, for what junitparser does not model."""
    return list(ET.parse(tmp_path / "junit.xml").iter("testcase"))


def counts(suite: TestSuite) -> tuple[int, int, int, int]:
    return suite.tests, suite.failures, suite.errors, suite.skipped


# --- JUnit XML -------------------------------------------------------------------------------


def test_a_run_that_passed(tmp_path: Path) -> None:
    tests = (
        a_test("Log in", tags=("smoke", "auth")),
        a_test("Log out", duration_ms=20),
        a_test("Pay", source="suites/shop/checkout.v2.json", attempts=2),
    )
    suite, cases = read_junit(a_run(*tests), tmp_path)

    assert counts(suite) == (3, 0, 0, 0)
    assert suite.name == "nightly smoke"
    assert suite.time == pytest.approx(4.567)
    assert datetime.fromisoformat(suite.timestamp) == STARTED
    assert suite.hostname == "ci-7"
    assert [(c.name, c.classname, c.time) for c in cases] == [
        ("Log in", "login", pytest.approx(1.234)),
        ("Log out", "login", pytest.approx(0.02)),
        ("Pay", "checkout_v2", pytest.approx(1.234)),
    ]
    assert all(c.is_passed and c.result == [] for c in cases)
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert (root.tag, root.get("tests"), root.get("failures"), root.get("errors")) == ("testsuites", "3", "0", "0")
    assert [s.get("id") for s in root.iter("testsuite")] == ["run-42"]
    elements = case_elements(tmp_path)
    assert [e.get("file") for e in elements] == ["tests/login.json", "tests/login.json", "suites/shop/checkout.v2.json"]
    properties = [{p.get("name"): p.get("value") for p in e.iter("property")} for e in elements]
    assert properties[0] == {"job_id": "job-log-in", "attempts": "1", "state": "completed", "tags": "smoke,auth"}
    assert properties[2]["attempts"] == "2"
    assert cases[0].system_out.splitlines() == [
        "  #  status        time  step",
        "  1  passed      0.812s  Open the shop",
        "  2  passed      0.095s  See the cart",
    ]


def test_files_of_one_name_in_different_folders_get_distinct_classnames(tmp_path: Path) -> None:
    """Jenkins keys a test's history by classname and name, and splits the classname at its last dot
    into package and class: two login.json files must not both be class "login"."""
    tests = (
        a_test("Log in", source="checks/a/login.json"),
        a_test("Log in", source="checks/b/login.json"),
        a_test("Pay", source="checks/a/pay.json"),
        a_test("Log in again", source="checks/b/login.json"),
        a_test("Deep", source="checks/c/deeper/login.json"),
    )
    _, cases = read_junit(a_run(*tests), tmp_path)  # still valid against junit-10.xsd

    assert [(c.name, c.classname) for c in cases] == [
        ("Log in", "a.login"),  # below checks/, the folder the three login.json have in common
        ("Log in", "b.login"),
        ("Pay", "pay"),  # no other pay.json: its name is as it always was
        ("Log in again", "b.login"),  # one file, one classname
        ("Deep", "c.deeper.login"),
    ]
    # The same files given in another order, or from another checkout, are named alike.
    elsewhere = [replace(t, source=f"/builds/7/{t.source}") for t in reversed(tests)]
    _, again = read_junit(a_run(*elsewhere), tmp_path)
    assert {(c.name, c.classname) for c in again} == {(c.name, c.classname) for c in cases}


def test_classnames_stay_distinct_when_dots_made_underscores_make_them_alike() -> None:
    names = classnames(["s/login_v2.json", "s/login.v2.json", "s/x/login.v2.json", "/abs/a/pay.json", "b/pay.json"])
    assert names == {
        "s/login.v2.json": "login_v2",
        "s/login_v2.json": "login_v2_2",  # alike once dots are underscores: numbered in the order of their paths
        "s/x/login.v2.json": "x.login_v2",
        "/abs/a/pay.json": "abs.a.pay",  # nothing in common with a relative path: no root folder in the name
        "b/pay.json": "b.pay",
    }
    assert len(set(names.values())) == len(names)


def test_a_failure_names_its_step_message_and_artifacts(tmp_path: Path) -> None:
    steps = (
        StepRow(0, "Open the shop", "passed", 812),
        StepRow(
            1,
            "Click checkout",
            "failed",
            5001,
            error="expected 'Thanks' in h1, got 'Oops'",
            artifacts=("2/step-01-failure.png",),
            console_errors=("TypeError: cart is undefined",),
            failed_requests=("POST https://shop.test/api/order 500",),
        ),
        StepRow(2, "Pay", "skipped", 0),
    )
    failed = a_test(
        "Checkout",
        state="failed",
        category="assertion",
        attempts=2,
        failing_step=1,
        failing_step_name="Click checkout",
        message="expected 'Thanks' in h1, got 'Oops'\nlocator: h1.title",
        artifacts=("2/trace.zip", "2/step-01-failure.png"),
        steps=steps,
    )
    suite, cases = read_junit(a_run(a_test(), failed), tmp_path)

    assert counts(suite) == (2, 1, 0, 0)
    [result] = cases[1].result
    assert isinstance(result, Failure)
    assert (result.type, result.message) == ("assertion", "expected 'Thanks' in h1, got 'Oops'")
    assert result.text.splitlines() == [
        "failed at step 2: Click checkout",
        "expected 'Thanks' in h1, got 'Oops'",
        "locator: h1.title",
        "",
        "artifacts (download them with: sentinel artifacts job-checkout, while the job is retained):",
        "  2/trace.zip",
        "  2/step-01-failure.png",
    ]
    assert cases[1].system_out.splitlines()[2:] == [
        "  2  failed      5.001s  Click checkout — expected 'Thanks' in h1, got 'Oops'",
        "       console: TypeError: cart is undefined",
        "       request: POST https://shop.test/api/order 500",
        "       artifact: 2/step-01-failure.png",
        "  3  skipped     0.000s  Pay",
    ]


def test_downloaded_artifacts_are_attachments_jenkins_and_gitlab_read(tmp_path: Path) -> None:
    files = ("evidence/j1/2/step-01-failure.png", "evidence/j1/2/trace.zip", "evidence/j1/1/trace.zip")
    failed = a_test("Checkout", state="failed", category="assertion", message="no button", files=files)
    bare = a_test("Bare", state="failed", category="browser", message="crashed", steps=(), files=files[:1])
    suite, cases = read_junit(a_run(a_test(), failed, bare), tmp_path)  # still valid against junit-10.xsd

    assert counts(suite) == (3, 1, 1, 0)
    attachments = ["[[ATTACHMENT|evidence/j1/2/step-01-failure.png]]", "[[ATTACHMENT|evidence/j1/2/trace.zip]]"]
    attachments.append("[[ATTACHMENT|evidence/j1/1/trace.zip]]")
    # One a line, after the step table; GitLab shows the first: the failure screenshot.
    assert cases[1].system_out.splitlines()[-3:] == attachments
    assert cases[2].system_out.splitlines() == attachments[:1]  # no step table to come first
    assert "ATTACHMENT" not in (cases[0].system_out or "")
    [result] = cases[1].result
    assert result.text.splitlines()[-4:] == ["artifacts, downloaded:", *(f"  {file}" for file in files)]
    # A file that was not downloaded is still named, with the command that fetches it.
    partly = a_test("Partly", state="failed", category="assertion", job_id="j1", artifacts=("2/trace.zip", "2/x.png"))
    suite, cases = read_junit(a_run(replace(partly, files=files[1:2])), tmp_path)
    [result] = cases[0].result
    assert result.text.splitlines()[-5:] == [
        "artifacts, downloaded:",
        "  evidence/j1/2/trace.zip",
        "",
        "artifacts (download them with: sentinel artifacts j1, while the job is retained):",
        "  2/x.png",
    ]
    # Downloaded into the working directory itself (`--artifacts .`): the same files are known as fetched.
    suite, cases = read_junit(a_run(replace(partly, files=("j1/2/trace.zip",))), tmp_path)
    [result] = cases[0].result
    assert result.text.splitlines()[-2:] == [
        "artifacts (download them with: sentinel artifacts j1, while the job is retained):",
        "  2/x.png",
    ]
    document = read_json(a_run(a_test(), failed), tmp_path)
    assert [t["artifactFiles"] for t in document["tests"]] == [[], list(files)]


def test_a_test_that_passed_on_a_later_attempt_is_a_flaky_pass(tmp_path: Path) -> None:
    flaky = a_test(
        "Checkout", attempts=2, category="assertion", message="expected '#s' to contain 'good', got 'bad'", flaky=True
    )
    suite, cases = read_junit(a_run(a_test(), flaky), tmp_path)

    assert counts(suite) == (2, 0, 0, 0)  # it passed
    assert cases[1].result == []
    assert cases[1].system_out.splitlines()[0] == (
        "flaky: passed on attempt 2; attempt 1 failed (assertion): expected '#s' to contain 'good', got 'bad'"
    )
    [properties] = case_elements(tmp_path)[1].findall("properties")
    assert {p.get("name"): p.get("value") for p in properties}["flaky"] == "true"
    [plain] = case_elements(tmp_path)[0].findall("properties")
    assert "flaky" not in {p.get("name") for p in plain}
    document = read_json(a_run(a_test(), flaky), tmp_path)
    assert [(t["outcome"], t["flaky"]) for t in document["tests"]] == [("passed", False), ("passed", True)]


def test_a_request_steps_http_status_is_shown_in_both_reports(tmp_path: Path) -> None:
    steps = (
        StepRow(0, "GET /health", "passed", 40, http_status=200),
        StepRow(1, "POST /api/order", "failed", 61, error="expected status 201, got 503", http_status=503),
    )
    failed = a_test("API", state="failed", category="assertion", failing_step=1, message="expected 201", steps=steps)
    _, cases = read_junit(a_run(failed), tmp_path)  # still valid against junit-10.xsd
    assert cases[0].system_out.splitlines()[1:] == [
        "  1  passed      0.040s  GET /health  HTTP 200",
        "  2  failed      0.061s  POST /api/order  HTTP 503 — expected status 201, got 503",
    ]
    document = read_json(a_run(failed, a_test()), tmp_path)
    assert [step["httpStatus"] for step in document["tests"][0]["steps"]] == [200, 503]
    assert [step["httpStatus"] for step in document["tests"][1]["steps"]] == [0, 0]  # not request steps


def test_a_timed_out_test_is_a_failure(tmp_path: Path) -> None:
    timed_out = a_test("Search", state="timeout", category="timeout", failing_step=0, failing_step_name="Open")
    suite, cases = read_junit(a_run(timed_out), tmp_path)

    assert counts(suite) == (1, 1, 0, 0)
    [result] = cases[0].result
    assert isinstance(result, Failure)
    assert (result.type, result.message) == ("timeout", "timed out")
    assert result.text.splitlines()[:2] == ["failed at step 1: Open", "timed out"]
    assert "artifacts" not in result.text  # none were kept, so no command to fetch them


def test_cancelled_and_never_run_tests_are_skipped(tmp_path: Path) -> None:
    tests = (
        a_test("Cancelled", state="cancelled", message="cancelled by request", steps=()),
        a_test("Waiting", state="pending", steps=()),
        a_test("Later", state="scheduled", steps=()),
    )
    suite, cases = read_junit(a_run(*tests), tmp_path)

    assert counts(suite) == (3, 0, 0, 3)
    assert all(c.is_skipped for c in cases)
    assert [c.result[0].message for c in cases] == [
        "cancelled by request",
        "never ran: still pending when the report was written",
        "never ran: still scheduled when the report was written",
    ]
    assert all(c.system_out is None for c in cases)  # no steps ran, so no step table


CLASSIFICATION = [
    ("completed", "", Outcome.PASSED),
    ("failed", "assertion", Outcome.FAILURE),
    ("failed", "timeout", Outcome.FAILURE),
    ("failed", "network", Outcome.FAILURE),
    ("timeout", "timeout", Outcome.FAILURE),
    ("timeout", "", Outcome.FAILURE),
    ("failed", "browser", Outcome.ERROR),
    ("failed", "system", Outcome.ERROR),
    ("failed", "validation", Outcome.ERROR),
    ("failed", "policy", Outcome.ERROR),
    ("failed", "unknown", Outcome.ERROR),
    ("failed", "", Outcome.ERROR),
    ("running", "", Outcome.ERROR),
    ("cancelled", "unknown", Outcome.SKIPPED),
    ("pending", "", Outcome.SKIPPED),
    ("scheduled", "", Outcome.SKIPPED),
]
ELEMENT = {Outcome.PASSED: None, Outcome.FAILURE: Failure, Outcome.ERROR: Error, Outcome.SKIPPED: Skipped}


@pytest.mark.parametrize(("state", "category", "expected"), CLASSIFICATION)
def test_classification(tmp_path: Path, state: str, category: str, expected: Outcome) -> None:
    test = a_test(state=state, category=category, message="boom")
    _, [case] = read_junit(a_run(test), tmp_path)

    assert outcome(test) is expected
    assert [type(r) for r in case.result] == ([ELEMENT[expected]] if ELEMENT[expected] else [])
    if expected in (Outcome.FAILURE, Outcome.ERROR):
        assert case.result[0].type == (category or state)
    assert read_json(a_run(test), tmp_path)["tests"][0]["outcome"] == expected.value


def test_every_category_of_a_failed_job_has_a_decided_outcome() -> None:
    """A category added to ErrorCategory must be placed in the table above (and the README's)."""
    assert {category for state, category, _ in CLASSIFICATION if state == "failed" and category} == {
        category.value for category in ErrorCategory
    }


@pytest.mark.parametrize(("field", "value"), [("state", "finished"), ("category", "flaky")])
def test_an_unknown_state_or_category_is_refused_and_nothing_written(tmp_path: Path, field: str, value: str) -> None:
    bad = a_test("Odd one", **({"state": "failed"} | {field: value}))
    for write in (write_junit, write_json):
        with pytest.raises(ValueError, match=f"test 'Odd one': '{value}' is not a valid"):
            write(a_run(a_test(), bad), tmp_path / "report")
    assert list(tmp_path.iterdir()) == []


NASTY = 'ünïcødé ✓ 日本語 🚀 <b>&amp;"quoted"</b> ]]> \x1b[31mred\x1b[0m bell\x07 nul\x00 \ud83d alone\ufffe'


def test_text_xml_1_0_cannot_carry_is_written_as_visible_escapes(tmp_path: Path) -> None:
    failed = a_test(
        "tab\tand\nnewline ]]> ✓",
        state="failed",
        category="browser",
        message=NASTY,
        steps=(StepRow(0, "Go \x0b there", "failed", 3, error=NASTY, console_errors=(NASTY,)),),
    )
    suite, [case] = read_junit(a_run(failed, name="run ]]> \x01"), tmp_path)

    visible = 'ünïcødé ✓ 日本語 🚀 <b>&amp;"quoted"</b> ]]> red bell\\x07 nul\\x00 \\ud83d alone\\ufffe'
    assert suite.name == "run ]]> \\x01"
    assert case.name == "tab\tand\nnewline ]]> ✓"  # attributes keep tabs and newlines (as character references)
    [result] = case.result
    assert isinstance(result, Error)
    assert result.message == visible
    assert result.text.splitlines()[0] == visible
    assert case.system_out.splitlines()[1:] == [
        f"  1  failed      0.003s  Go \\x0b there — {visible}",
        f"       console: {visible}",
    ]


def test_the_json_report_keeps_text_exactly_but_a_lone_surrogate(tmp_path: Path) -> None:
    failed = a_test(state="failed", category="browser", message=NASTY)
    [test] = read_json(a_run(failed), tmp_path)["tests"]
    assert test["message"] == NASTY.replace("\ud83d", "\ufffd")


def test_an_empty_run(tmp_path: Path) -> None:
    suite, cases = read_junit(a_run(duration_ms=0), tmp_path)

    assert counts(suite) == (0, 0, 0, 0)
    assert cases == []
    assert suite.time == 0
    document = read_json(a_run(), tmp_path)
    assert document["tests"] == []
    assert document["summary"] == {"tests": 0, "passed": 0, "failures": 0, "errors": 0, "skipped": 0}


def test_many_tests(tmp_path: Path) -> None:
    kinds = [("completed", ""), ("failed", "assertion"), ("failed", "browser"), ("timeout", ""), ("cancelled", "")]
    tests = [a_test(f"test {i:04d}", state=kinds[i % 5][0], category=kinds[i % 5][1]) for i in range(2000)]
    suite, cases = read_junit(a_run(*tests), tmp_path)

    assert counts(suite) == (2000, 800, 400, 400)
    assert [c.name for c in cases] == [t.name for t in tests]
    assert read_json(a_run(*tests), tmp_path)["summary"] == {
        "tests": 2000,
        "passed": 400,
        "failures": 800,
        "errors": 400,
        "skipped": 400,
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(st.characters(exclude_categories=[]), max_size=40))
def test_any_text_gives_a_valid_report(tmp_path: Path, text: str) -> None:
    failed = a_test(text, state="failed", category="assertion", message=text, tags=(text,))
    _, [case] = read_junit(a_run(failed, name=text), tmp_path)  # well-formed, valid, readable
    if all(xml_can_carry(c) for c in text):
        assert case.name == text  # arrives unchanged


def xml_can_carry(char: str) -> bool:
    """XML 1.0's Char production, checked apart from the code under test."""
    return char in "\t\n\r" or " " <= char < "\ud800" or "\ue000" <= char <= "\ufffd" or char >= "\U00010000"


# --- both ------------------------------------------------------------------------------------


def test_the_json_report_round_trips_with_the_documented_keys(tmp_path: Path) -> None:
    failed = a_test(
        "Checkout",
        state="failed",
        category="assertion",
        message="no button",
        failing_step=1,
        failing_step_name="See the cart",
        artifacts=("1/trace.zip",),
        tags=("shop",),
    )
    document = read_json(a_run(a_test(), failed), tmp_path)

    top = {"schemaVersion", "runId", "name", "hostname", "startedAt", "durationMs", "summary", "tests"}
    assert set(document) == top
    assert document["schemaVersion"] == SCHEMA_VERSION == 1
    assert (document["runId"], document["name"], document["hostname"]) == ("run-42", "nightly smoke", "ci-7")
    assert datetime.fromisoformat(document["startedAt"]) == STARTED
    assert document["durationMs"] == 4567
    assert document["summary"] == {"tests": 2, "passed": 1, "failures": 1, "errors": 0, "skipped": 0}
    passed, failure = document["tests"]
    assert set(failure) == {
        "name",
        "jobId",
        "source",
        "state",
        "outcome",
        "category",
        "message",
        "durationMs",
        "attempts",
        "failingStep",
        "artifacts",
        "artifactFiles",
        "flaky",
        "tags",
        "steps",
    }
    assert passed["failingStep"] is None and passed["artifactFiles"] == failure["artifactFiles"] == []
    assert passed["flaky"] is failure["flaky"] is False
    assert failure["failingStep"] == {"index": 1, "name": "See the cart"}
    assert (failure["jobId"], failure["outcome"], failure["artifacts"], failure["tags"]) == (
        "job-checkout",
        "failure",
        ["1/trace.zip"],
        ["shop"],
    )
    assert failure["steps"][0] == {
        "index": 0,
        "name": "Open the shop",
        "status": "passed",
        "durationMs": 812,
        "error": "",
        "artifacts": [],
        "consoleErrors": [],
        "failedRequests": [],
        "httpStatus": 0,
    }


def test_timestamps_are_utc_whatever_zone_the_run_started_in(tmp_path: Path) -> None:
    report = a_run(started_at=STARTED.astimezone(timezone(timedelta(hours=-5))))
    suite, _ = read_junit(report, tmp_path)
    assert suite.timestamp == "2025-03-01T12:30:05.250+00:00"
    assert read_json(report, tmp_path)["startedAt"] == "2025-03-01T12:30:05.250+00:00"


def test_a_start_without_a_time_zone_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        write_junit(a_run(started_at=STARTED.replace(tzinfo=None)), tmp_path / "junit.xml")


@pytest.mark.parametrize("write", [write_junit, write_json])
def test_a_report_replaces_the_last_one_whole(tmp_path: Path, write: Any) -> None:
    path = tmp_path / "reports" / "nested" / "out"  # directories are made
    write(a_run(a_test("first")), path)
    write(a_run(a_test("second")), path)
    assert "second" in path.read_text(encoding="utf-8")
    assert "first" not in path.read_text(encoding="utf-8")
    assert [p.name for p in path.parent.iterdir()] == ["out"]  # no temporary file left


@pytest.mark.parametrize("write", [write_junit, write_json])
def test_a_report_through_a_symlink_or_into_a_pipe_writes_what_they_name_and_keeps_them(
    tmp_path: Path, write: Any
) -> None:
    """`--json /dev/stdout` (a CI log) or a link to a shared folder: a rename over the path would put
    a plain file where the link or the device was (as root, over /dev/stdout itself)."""
    (tmp_path / "shared").mkdir()
    link = tmp_path / "report"
    link.symlink_to(tmp_path / "shared" / "report.out")
    write(a_run(a_test("linked")), link)
    assert link.is_symlink() and "linked" in (tmp_path / "shared" / "report.out").read_text(encoding="utf-8")

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)  # its other end open, as a CI log reader's is
    try:
        write(a_run(a_test("piped")), pipe)  # a small report: it fits the pipe's buffer, nothing blocks
        assert b"piped" in os.read(reader, 1 << 20)  # a file renamed over the pipe would leave it empty
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(pipe.stat().st_mode)  # still the pipe, not a file put in its place


@pytest.mark.parametrize("write", [write_junit, write_json])
def test_a_failed_write_leaves_the_last_report_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write: Any
) -> None:
    path = tmp_path / "out"
    write(a_run(a_test("first")), path)
    before = path.read_bytes()

    def disk_full(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("sentinel_cli.reports.os.replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write(a_run(a_test("second")), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_only_the_documented_extensions_go_beyond_the_schema(tmp_path: Path) -> None:
    """The file as written differs from junit-10.xsd only by testcase `file` and <properties>."""
    write_junit(a_run(a_test(), a_test("Broken", state="failed", category="system")), tmp_path / "junit.xml")
    errors = list(SCHEMA.iter_errors(ET.parse(tmp_path / "junit.xml")))
    assert {getattr(e.elem, "tag", None) for e in errors} == {"testcase"}
    assert {"'file' attribute" in str(e.reason) or "'properties'" in str(e.reason) for e in errors} == {True}
    assert len(errors) == 2 * 2  # both extensions on both testcases
